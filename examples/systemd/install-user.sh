#!/usr/bin/env bash
# Installs heraldd and herald for the current user, with the socket-activated user units.
#
# usage: bash examples/systemd/install-user.sh [--prefix DIR] [--uninstall]
#
#   --prefix DIR   where the binaries go: DIR/bin (default: ~/.local)
#   --uninstall    stop and disable the units, remove them and the binaries
#
# The binaries are built with --static-swift-stdlib, so they run where no Swift toolchain
# is installed (they still need libsystemd, which every systemd machine has). Units go to
# ~/.config/systemd/user/ with ExecStart pointing at DIR/bin.
set -euo pipefail
prefix="$HOME/.local"
uninstall=0
while [ $# -gt 0 ]; do
    case "$1" in
    --prefix) prefix=$2; shift 2 ;;
    --uninstall) uninstall=1; shift ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "install-user.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
units="${XDG_CONFIG_HOME:-$HOME/.config}/systemd/user"
user_units=(heraldd.socket heraldd.service herald-power-log.service)
have_user_manager() { command -v systemctl >/dev/null && systemctl --user show-environment >/dev/null 2>&1; }

if [ $uninstall = 1 ]; then
    if have_user_manager; then
        systemctl --user disable --now heraldd.socket heraldd.service herald-power-log.service 2>/dev/null || true
    fi
    for unit in "${user_units[@]}"; do rm -f "$units/$unit"; done
    rm -f "$units/heraldd.service.d/fdstore-preserve.conf"
    rmdir "$units/heraldd.service.d" 2>/dev/null || true
    rm -f "$prefix/bin/heraldd" "$prefix/bin/herald"
    have_user_manager && systemctl --user daemon-reload || true
    echo "removed the Herald user units and $prefix/bin/{heraldd,herald}"
    exit 0
fi

echo "building heraldd and herald (release, static Swift runtime) ..."
(cd "$root" && swift build -c release --static-swift-stdlib --scratch-path .build-static --product heraldd >/dev/null &&
    swift build -c release --static-swift-stdlib --scratch-path .build-static --product herald >/dev/null)
mkdir -p "$prefix/bin" "$units"
install -m 0755 "$root/.build-static/release/heraldd" "$root/.build-static/release/herald" "$prefix/bin/"
for unit in "${user_units[@]}"; do
    sed "s|%h/.local/bin/|$prefix/bin/|g" "$here/$unit" > "$units/$unit"
done
# systemd 254+ can keep the descriptor store (retained messages) across the idle exit.
systemd_version=$(systemctl --version 2>/dev/null | awk 'NR == 1 { print $2 }')
if [ "${systemd_version:-0}" -ge 254 ] 2>/dev/null; then
    mkdir -p "$units/heraldd.service.d"
    install -m 0644 "$here/heraldd.service.d/fdstore-preserve.conf" "$units/heraldd.service.d/"
fi
echo "installed $prefix/bin/heraldd, $prefix/bin/herald and, in $units, ${user_units[*]}"
if have_user_manager; then
    systemctl --user daemon-reload
    echo
    echo "enable the bus (the broker starts on the first connection):"
else
    echo
    echo "no systemd user manager is reachable here; on a machine with one:"
fi
cat <<EOT
  systemctl --user daemon-reload
  systemctl --user enable --now heraldd.socket
  $prefix/bin/herald ping                      # starts the broker, shows it
  systemctl --user status heraldd.socket heraldd.service
  journalctl --user -u heraldd -f
and, to see it at work, the example subscriber:
  systemctl --user start herald-power-log && $prefix/bin/herald pub power/battery 87
  journalctl --user -u herald-power-log
EOT
