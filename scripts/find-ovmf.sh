#!/usr/bin/env bash
# Prints the path of a combined OVMF firmware image (Debian's ovmf package).
for f in /usr/share/ovmf/OVMF.fd /usr/share/OVMF/OVMF.fd /usr/share/qemu/OVMF.fd; do
  [ -f "$f" ] && { echo "$f"; exit 0; }
done
echo "find-ovmf: no OVMF.fd found (apt-get install ovmf)" >&2
exit 1
