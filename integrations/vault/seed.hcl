# For the person who puts the login into Vault (`lightfi-token login
# --storage vault`) and takes it out again (`lightfi-token logout`):
# `create` writes the first version; `delete` on the metadata path removes
# the secret with every version, so no old refresh token stays behind.
path "secret/data/lightfi-token/ci" {
  capabilities = ["create", "read", "update"]
}

path "secret/metadata/lightfi-token/ci" {
  capabilities = ["delete"]
}
