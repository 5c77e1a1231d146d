# Shared by the provision steps: install Debian packages that are missing, never upgrading.
need_packages() {
    local missing=()
    for pkg in "$@"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "installing: ${missing[*]}"
    if [ ! -e /tmp/.poolwatch-apt-updated ]; then
        apt-get update -qq && touch /tmp/.poolwatch-apt-updated
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-upgrade "${missing[@]}" >/dev/null
}
