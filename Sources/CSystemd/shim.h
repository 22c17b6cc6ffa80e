// libsystemd's daemon API (sd_notify, sd_listen_fds, …) for heraldd.
#include <systemd/sd-daemon.h>
