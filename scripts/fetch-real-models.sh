#!/usr/bin/env bash
# Real Keras models converted to TF.js, as they ship inside an npm package, for `npm run test:models`:
# nsfwjs 4.4.0 (MIT, Infinite Red) bundles a Keras MobileNetV2 (224x224x3, 5 classes, 2.6 MB of
# uint8-quantized weights) and a Keras InceptionV3 (299x299x3, 94 convs, 15 Concatenate, 21 MB).
# They are fetched with npm (nothing else is downloaded), checked against the pinned integrity,
# and written to test/fixtures/real/NAME/ (git-ignored: too large for git).
set -euo pipefail
cd "$(dirname "$0")/.."
PACKAGE=nsfwjs@4.4.0
INTEGRITY='sha512-krC1fgeTLXtZwgdpKJ0jm7hqv0gTSRQQRL+FhOaxaJ9Wj92t42BO3csO2odwgTAgZgf2RvkwPtp0R8Aa7dc+MA=='
DEST=test/fixtures/real
if [ -f "$DEST/mobilenet_v2/model.json" ] && [ -f "$DEST/inception_v3/model.json" ]; then
  echo "fetch-real-models: $DEST already holds the models"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
npm pack "$PACKAGE" --pack-destination "$tmp" --silent >/dev/null
tarball=$(ls "$tmp"/*.tgz)
actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
if [ "$actual" != "$INTEGRITY" ]; then
  echo "fetch-real-models: $tarball has integrity $actual, expected $INTEGRITY" >&2
  exit 1
fi
tar xzf "$tarball" -C "$tmp"
node scripts/extract-bundled-models.js "$tmp/package/dist/models" "$DEST" mobilenet_v2 inception_v3
cp "$tmp/package/LICENSE" "$DEST/LICENSE-nsfwjs"
