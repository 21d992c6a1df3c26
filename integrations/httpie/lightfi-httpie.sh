# lhttp / lxh: HTTPie and xh with a valid LightFi access token, for bash and
# zsh (they use process substitution). Add to ~/.bashrc or ~/.zshrc:
#
#   . /path/to/integrations/httpie/lightfi-httpie.sh
#
# then use them exactly like `http` / `xh`, URL first as usual:
#
#   lhttp https://api.lightfi.example/v1/sites
#   lxh POST https://api.lightfi.example/v1/sites name=Depot
#
# The header value is read from file descriptor 3 (`Authorization:@FILE`,
# HTTPie >= 3.0, xh >= 0.17), so the token is never in argv, where every
# user on the machine can read it with `ps`, nor in a shell variable.

lhttp() {
    # Log in or refresh first, so a failure stops here with lightfi-token's
    # message and exit code (3: run `lightfi-token login`).
    lightfi-token >/dev/null || return
    http "$@" Authorization:@/dev/fd/3 3< <(lightfi-token --format header | cut -d ' ' -f 2-)
}

lxh() {
    lightfi-token >/dev/null || return
    xh "$@" Authorization:@/dev/fd/3 3< <(lightfi-token --format header | cut -d ' ' -f 2-)
}
