#!/usr/bin/env bash
# make dist: one tarball per platform, dist/feederd-VERSION-linux-ARCH.tar.gz,
# holding the static binaries, the profiles, the systemd unit and sysusers
# file, example configurations and the docs, laid out as they install:
#
#   feederd-VERSION-linux-ARCH/
#     bin/feederd, bin/rtusim
#     etc/feederd/feederd.yaml.example   (configs/demo.yaml)
#     etc/feederd/profiles/*.yaml
#     etc/feederd/sim/demo.yaml          (rtusim's demo fleet)
#     lib/systemd/system/feederd.service
#     lib/sysusers.d/feederd.conf
#     share/doc/feederd/README.md, BENCHMARKS.md, alertmanager.yml
#
#   scripts/dist.sh VERSION OUTDIR ARCH...
set -euo pipefail
cd "$(dirname "$0")/.."
version=$1 out=$2
shift 2
[ $# -gt 0 ] || set -- amd64 arm64
mkdir -p "$out"
out=$(cd "$out" && pwd)
for arch in "$@"; do
  name=feederd-$version-linux-$arch
  stage=$(mktemp -d)
  trap 'rm -rf "$stage"' EXIT
  root=$stage/$name
  mkdir -p "$root/bin" "$root/etc/feederd/profiles" "$root/etc/feederd/sim" \
    "$root/lib/systemd/system" "$root/lib/sysusers.d" "$root/share/doc/feederd"
  for cmd in feederd rtusim; do
    CGO_ENABLED=0 GOOS=linux GOARCH=$arch ${GO:-go} build -trimpath \
      -ldflags "-s -w -X main.version=$version" -o "$root/bin/$cmd" "./cmd/$cmd"
  done
  cp configs/demo.yaml "$root/etc/feederd/feederd.yaml.example"
  cp configs/profiles/*.yaml "$root/etc/feederd/profiles/"
  cp configs/sim/demo.yaml "$root/etc/feederd/sim/demo.yaml"  # ../profiles/ holds
  cp deploy/systemd/feederd.service "$root/lib/systemd/system/"
  cp deploy/systemd/feederd.sysusers "$root/lib/sysusers.d/feederd.conf"
  cp README.md BENCHMARKS.md configs/alertmanager.yml "$root/share/doc/feederd/"
  # Fixed owner, order and times: the archive depends only on its files.
  tar -C "$stage" --sort=name --owner=0 --group=0 --numeric-owner \
    --mtime="${SOURCE_DATE_EPOCH:+@$SOURCE_DATE_EPOCH}${SOURCE_DATE_EPOCH:-2026-01-01 00:00:00Z}" \
    -czf "$out/$name.tar.gz" "$name"
  rm -rf "$stage"
  trap - EXIT
  echo "$out/$name.tar.gz"
done
