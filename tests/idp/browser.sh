#!/bin/sh
# Single-path wrapper for $BROWSER: BROWSER=/abs/path/tests/idp/browser.sh
exec node "$(dirname "$0")/browser.js" "$@"
