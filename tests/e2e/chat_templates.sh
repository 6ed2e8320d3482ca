#!/bin/bash
# chat_templates.sh - the chat-template engine against python3-jinja2 with
# Hugging Face's settings (tests/template/ref_render.py): every real template
# in tests/template/templates/ with every conversation, plus seeded mutations
# of each template; all must render byte for byte as jinja2 does, fail where
# it fails (raise_exception with the same message), or (mutations only) be
# refused as unsupported, which is counted.
set -euo pipefail
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
cd "$(dirname "$0")/../.."
"$PYTHON" -c 'import jinja2' 2>/dev/null || { echo "chat_templates: $PYTHON has no jinja2 (python3-jinja2)" >&2; exit 1; }
make -s BUILD="$BUILD" "$BUILD/tmpl_render"
"$PYTHON" tests/template/ref_render.py --bin "$BUILD/tmpl_render"
