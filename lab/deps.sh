#!/bin/bash
# Install the Debian packages the lab needs.  Idempotent: does nothing when
# everything is present.
set -euo pipefail
. "$(dirname "$0")/lab.conf"

pkgs=(
	"$BASE_PKG=$BASE_VERSION"
	build-essential gcc-multilib flex bison bc cpio kmod rsync xz-utils
	libelf-dev libssl-dev ccache sparse codespell python3-ply python3-git
	python3-sphinx python3-sphinx-rtd-theme git-email b4
	qemu-system-x86 busybox-static spin python3 gdb binutils
	python3-matplotlib
)

missing=()
for p in "${pkgs[@]}"; do
	name=${p%%=*}
	want=${p#*=}
	have=$(dpkg-query -W -f='${Status} ${Version}' "$name" 2>/dev/null || true)
	case "$have" in
	"install ok installed"*)
		[ "$name" = "$want" ] || [ "${have##* }" = "$want" ] || missing+=("$p")
		;;
	*) missing+=("$p") ;;
	esac
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
if ! apt-get install -y -q "${missing[@]}" >/dev/null; then
	# The pinned base may have left the archive: take the newest one.
	echo "deps: ************************************************************" >&2
	echo "deps: WARNING: $BASE_PKG=$BASE_VERSION is not installable;" >&2
	echo "deps: WARNING: falling back to the newest $BASE_PKG." >&2
	echo "deps: ************************************************************" >&2
	apt-get install -y -q "${missing[@]/$BASE_PKG=$BASE_VERSION/$BASE_PKG}" >/dev/null
fi
