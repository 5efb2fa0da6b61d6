#!/usr/bin/env bash
# Builds the Debian package <target>/debian/flatstore_<version>-1_<arch>.deb (dpkg-deb, no
# debhelper), <target> being where cargo puts its output (CARGO_TARGET_DIR, or `target`): the
# two builds of the library, plus the CLI, its man page, the examples and the docs.
#
#   /usr/lib/<multiarch>/libflatstore.so.*        the OpenSER C library (cargo cinstall:
#   /usr/include/flatstore.h                       soname, links, header, pkg-config file)
#   /usr/lib/<multiarch>/pkgconfig/flatstore.pc
#   /usr/lib/<multiarch>/kamailio/modules/flatstore.so
#                                                  the Kamailio module (hosts/kamailio,
#                                                  flatstore-kamailio), built against the
#                                                  installed Kamailio
#   /usr/bin/flatstore                             the CLI; man page flatstore(1) by help2man
#   /usr/share/doc/flatstore/                      README, copyright, docs/, examples/
#                                                  (logrotate.conf, kamailio.cfg)
#   /etc/logrotate.d/flatstore                     examples/logrotate.conf, a conffile
#   DEBIAN/postinst, postrm                        packaging/postinst (makes /var/log/kamailio/acc
#                                                  owned by the user kamailio), postrm
#
# Needs: cargo-c (cargo cinstall), kamailio (or FLATSTORE_KAMAILIO_VERSION and
# FLATSTORE_KAMAILIO_FLAGS, see docs/kamailio.md), dpkg-dev, help2man. Maintainer: $DEBFULLNAME
# <$DEBEMAIL> when set.
set -euo pipefail
cd "$(dirname "$0")/.."

id=$(cargo pkgid -p flatstore)
version=${id##*[#@]}
target=$(bash packaging/target-dir.sh)
revision=1
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
out=$target/debian
stage=$out/stage
rm -rf "$stage"
mkdir -p "$stage/DEBIAN"

# The C library: what `cargo cinstall` installs, shared object only (a static archive of a
# Rust library would carry every dependency of the crate, the CLI's too).
cargo cinstall --package flatstore --release --library-type cdylib --prefix /usr --libdir "/usr/lib/$multiarch" \
    --destdir "$stage"
library=$(readlink -f "$stage/usr/lib/$multiarch/libflatstore.so")
chmod 644 "$library"

# The Kamailio module: the crate hosts/kamailio (the library's Kamailio face). Its loader
# strings come from the installed kamailio (hosts/kamailio/build.rs).
cargo build --release -p flatstore-kamailio
install -D -m 644 "$target/release/libflatstore_kamailio.so" \
    "$stage/usr/lib/$multiarch/kamailio/modules/flatstore.so"

# The CLI and its man page, made from its --help output (and each command's).
cargo build --release -p flatstore-cli --bin flatstore
cli=$target/release/flatstore
install -D -m 755 "$cli" "$stage/usr/bin/flatstore"
commands=$out/commands.h2m
{
    echo "[COMMANDS]"
    for command in rotate cat verify export stats seal cdr load; do
        echo ".SS $command"
        echo ".nf"
        "$cli" "$command" --help | sed -e 's/\\/\\e/g' -e "s/^[.']/\\\\\\&&/"
        echo ".fi"
    done
} >"$commands"
mkdir -p "$stage/usr/share/man/man1"
help2man --no-info --section 1 --include "$commands" \
    --name "read, check, export, rotate and seal flatstore accounting files" \
    "$cli" | gzip -9n >"$stage/usr/share/man/man1/flatstore.1.gz"

doc=$stage/usr/share/doc/flatstore
install -D -m 644 README.md "$doc/README.md"
for page in docs/*.md; do
    install -D -m 644 "$page" "$doc/$page"
done
install -D -m 644 examples/logrotate.conf "$doc/examples/logrotate.conf"
install -D -m 644 examples/kamailio.cfg "$doc/examples/kamailio.cfg"

# The logrotate recipe, for the directory the postinst makes; a conffile (an operator's changes
# survive upgrades). Its paths are already the installed ones; only the how-to-install note is
# replaced. missingok: nothing happens while the directory does not exist.
mkdir -p "$stage/etc/logrotate.d"
NOTE='# Installed by the flatstore package as a conffile (your changes are kept on upgrades), for
# /var/log/kamailio/acc: the directory the package makes, owned by the user kamailio, and where
# examples/kamailio.cfg writes. For another directory, change it (twice). Nothing happens while
# the directory does not exist (missingok).' \
    awk '/^# Install by hand:/ { skip = 1 } skip && /^$/ { skip = 0; print ENVIRON["NOTE"] } !skip' \
    examples/logrotate.conf >"$stage/etc/logrotate.d/flatstore"
chmod 644 "$stage/etc/logrotate.d/flatstore"
echo /etc/logrotate.d/flatstore >"$stage/DEBIAN/conffiles"
install -m 755 packaging/postinst packaging/postrm "$stage/DEBIAN/"
{
    echo "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
    echo "Upstream-Name: flatstore"
    echo
    echo "Files: *"
    echo "License: MIT"
    sed -e 's/^$/./' -e 's/^/ /' LICENSE
} >"$doc/copyright"

# Debian policy: shared objects stripped of debug information and symbols not needed.
module=$stage/usr/lib/$multiarch/kamailio/modules/flatstore.so
strip --strip-unneeded --remove-section=.comment --remove-section=.note \
    "$library" "$module" "$stage/usr/bin/flatstore"

# The module loads only into the Kamailio whose version string it was built with.
kamailio_version=${FLATSTORE_KAMAILIO_VERSION:-$(kamailio -V | sed -n 's/^version: //p')}
kamailio_upstream=$(sed -n 's/^kamailio \([0-9][0-9.]*\) .*/\1/p' <<<"$kamailio_version")
[ -n "$kamailio_upstream" ] || { echo "no Kamailio version in '$kamailio_version'" >&2; exit 1; }
next=${kamailio_upstream%.*}.$((${kamailio_upstream##*.} + 1))

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir "$scratch/debian" && touch "$scratch/debian/control"
shlibs=$(cd "$scratch" && dpkg-shlibdeps -O "-e$stage/usr/bin/flatstore" \
    "-e$module" "-e$library")
soname=$(objdump -p "$library" | awk '$1 == "SONAME" {print $2}')

cat >"$stage/DEBIAN/control" <<CONTROL
Package: flatstore
Version: $version-$revision
Architecture: $arch
Maintainer: ${DEBFULLNAME:-the flatstore developers} <${DEBEMAIL:-flatstore@localhost}>
Installed-Size: $(du -sk --exclude=DEBIAN "$stage" | cut -f1)
Depends: ${shlibs#shlibs:Depends=}
Suggests: logrotate
Enhances: kamailio
Breaks: kamailio (<< $kamailio_upstream), kamailio (>= $next~)
Section: net
Priority: optional
Description: SIP accounting to flat files (OpenSER/Kamailio flatstore)
 One |-separated line per accounting record, one file per process per table,
 no locks between processes, rotation without losing or tearing a line.
 .
 Contains the OpenSER 1.x C library libflatstore (header, pkg-config file),
 the Kamailio $kamailio_upstream module flatstore.so (a drop-in replacement for
 db_flatstore), and the flatstore command (rotate, cat, verify, export, stats,
 seal, cdr, load). Sets up /var/log/kamailio/acc, owned by the user kamailio, and
 its logrotate recipe.
CONTROL
# The library's soname, for packages linking it (dpkg-shlibdeps), and ldconfig after install.
echo "${soname%.so.*} ${soname#*.so.} flatstore (>= $version)" >"$stage/DEBIAN/shlibs"
echo "activate-noawait ldconfig" >"$stage/DEBIAN/triggers"
(cd "$stage" && find usr -type f -print0 | sort -z | xargs -0 md5sum) >"$stage/DEBIAN/md5sums"

deb=$out/flatstore_${version}-${revision}_$arch.deb
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb"
echo "$deb"
