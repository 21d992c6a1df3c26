# The least a lightfi-token runner needs on the shared login: read it, and
# write a refreshed token (and the refresh lease) over the existing secret.
# No `create`: a runner can never start a login of its own there; no
# `delete`: it can never remove one.
path "secret/data/lightfi-token/ci" {
  capabilities = ["read", "update"]
}
