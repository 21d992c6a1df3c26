# lcurl: curl with a valid LightFi access token, for bash, zsh, dash and other
# POSIX shells. Add to your shell profile:
#
#   . /path/to/integrations/curl/lightfi-curl.sh
#
# then use it exactly like curl:
#
#   lcurl -sS https://api.lightfi.example/v1/sites
#
# The token goes through a pipe into `curl -H @-` (curl >= 7.55), so it is
# never in a process's argv (visible to every user in `ps`) nor in a shell
# variable (printed by `set -x`). Because curl reads that header from stdin,
# lcurl cannot also send stdin as a body (`-d @-`, `-T -`): see README.md.
lcurl() {
    # Log in or refresh first, so a failure stops here with lightfi-token's
    # message and exit code (3: run `lightfi-token login`) instead of
    # sending the request without a token. The second call is the cached path.
    lightfi-token >/dev/null || return
    lightfi-token --format header | curl -H @- "$@"
}
