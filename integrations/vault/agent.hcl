# OpenBao / Vault Agent: logs in with AppRole, keeps a Vault token in a sink
# file, and renders the shared login's access token into a JSON file that
# lightfi-token's file source (token_file) or any other program reads.
# Run: VAULT_ADDR=https://vault.example:8200 bao agent -config=agent.hcl
# (or `vault agent`). The AppRole's token policy: runner.hcl.

auto_auth {
  method "approle" {
    config = {
      role_id_file_path                   = "/etc/lightfi-token/role-id"
      secret_id_file_path                 = "/etc/lightfi-token/secret-id"
      remove_secret_id_file_after_reading = false
    }
  }

  # The Vault token, kept fresh: lightfi-token's `vault_token_file` points
  # here, so the machine that refreshes the record uses the same login.
  sink "file" {
    config = {
      path = "/run/lightfi-token/vault-token"
      mode = 0600
    }
  }
}

template {
  source      = "/etc/lightfi-token/token.json.ctmpl"
  destination = "/run/lightfi-token/token.json"
  perms       = "0600"
}
