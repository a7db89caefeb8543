#!/usr/bin/env bash
# The Debian packages hearth-media needs to build (pkg-config, GStreamer headers) and to run
# (the plugins its pipelines use). Printed one per line; scripts/test.sh and scripts/setup.sh
# install them.
cat <<'LIST'
pkg-config
libgstreamer1.0-dev
libgstreamer-plugins-base1.0-dev
gstreamer1.0-plugins-base
gstreamer1.0-plugins-good
gstreamer1.0-plugins-bad
gstreamer1.0-plugins-ugly
gstreamer1.0-libav
gstreamer1.0-x
LIST
