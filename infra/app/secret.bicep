// One Key Vault secret. A module (called with `if` from keyvault.bicep) rather than a conditional resource, so
// the resource itself is unconditional and static checks (Checkov) see its properties.
param vaultName string
param name string

@secure()
param value string

@description('What the value is, for people browsing the vault (never the value itself).')
param contentType string = 'text/plain'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: vaultName
}

resource secret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  // checkov:skip=CKV_AZURE_41: These are external credentials (Teams Workflow URL with its SAS signature, webhook URL and HMAC secret, PagerDuty routing key) whose lifetime the issuing system sets; an expiry here would only silently stop alert delivery. Rotate by redeploying with the new value (docs/deploy.md).
  parent: vault
  name: name
  properties: {
    value: value
    contentType: contentType
  }
}

output name string = secret.name
