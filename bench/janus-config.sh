#!/usr/bin/env bash
# Writes a Janus (Debian's `janus` 1.1.2) configuration for bench/media.sh's side-by-side runs:
# only the VideoRoom plugin and the plain-HTTP transport (on loopback), sessions that never
# time out, a fixed number of event loops, and room ROOM for one VP8/Opus publisher with no
# bitrate cap (so that the publisher sends what the load generator asks for, as with Hearth).
#
#   bench/janus-config.sh DIR HTTP_PORT ROOM [EVENT_LOOPS]
#
# Start it with `janus -C DIR/janus.jcfg -F DIR`. Janus gathers no loopback candidates, so its
# media runs on the host's own address (the kernel delivers it locally, as on loopback), and the
# load generator binds that address (bench/media.sh does).
set -euo pipefail
DIR="$1" PORT="$2" ROOM="$3" LOOPS="${4:-1}"
LIB="$(dirname "$(dpkg -L janus 2>/dev/null | grep -m1 '/janus/plugins/libjanus_videoroom.so$')")"
LIB="${LIB%/plugins}"
[ -d "$LIB/plugins" ] || { echo "janus is not installed (apt-get install janus)" >&2; exit 1; }
mkdir -p "$DIR"
other_plugins="$(cd "$LIB/plugins" && ls libjanus_*.so | grep -v videoroom | paste -sd,)"
other_transports="$(cd "$LIB/transports" && ls libjanus_*.so | grep -v libjanus_http.so | paste -sd,)"

cat >"$DIR/janus.jcfg" <<EOF
general: {
	configs_folder = "$DIR"
	plugins_folder = "$LIB/plugins"
	transports_folder = "$LIB/transports"
	events_folder = "$LIB/events"
	loggers_folder = "$LIB/loggers"
	debug_level = 3
	session_timeout = 0
	event_loops = $LOOPS
}
media: {
	rtp_port_range = "30000-45000"
}
nat: {
	ignore_mdns = true
}
plugins: {
	disable = "$other_plugins"
}
transports: {
	disable = "$other_transports"
}
loggers: {
	disable = "libjanus_jsonlog.so"
}
events: {
	broadcast = false
}
EOF

cat >"$DIR/janus.transport.http.jcfg" <<EOF
general: {
	json = "compact"
	base_path = "/janus"
	http = true
	port = $PORT
	ip = "127.0.0.1"
	https = false
}
admin: {
	admin_http = false
	admin_https = false
}
EOF

cat >"$DIR/janus.plugin.videoroom.jcfg" <<EOF
general: {
}
room-$ROOM: {
	description = "hearth bench"
	publishers = 1
	bitrate = 0
	fir_freq = 0
	audiocodec = "opus"
	videocodec = "vp8"
	notify_joining = false
	record = false
}
EOF
