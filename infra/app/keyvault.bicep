// Key Vault for the alert destinations' secrets (Teams Workflow URLs carry a SAS signature, webhook signing
// secret, PagerDuty routing key). The app reads them only through Key Vault references in its app settings,
// resolved by the platform with the user-assigned identity (keyVaultReferenceIdentity).
// A secret is created only when a value is given; main.bicep sets the matching app setting only then.
param name string
param location string
param tags object

@secure()
param alertTeamsWebhookUrl string = ''
@secure()
param alertWebhookUrl string = ''
@secure()
param alertWebhookSecret string = ''
@secure()
param alertPagerDutyRoutingKey string = ''

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109: App Service / Functions Key Vault references are not a trusted Microsoft service for the Key Vault firewall; without VNet integration (not in this template) a Deny default would leave every reference unresolved. Access is RBAC-only (Key Vault Secrets User for the app's identity on this vault).
  // checkov:skip=CKV_AZURE_189: Same reason as CKV_AZURE_109: the Function App resolves references over the public endpoint. Disable public access together with VNet integration and a private endpoint.
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

// Secret names use '-' (Key Vault allows no '_'); the app setting names are the code's aliases.
var secretNames = {
  teamsWebhookUrl: 'alert-teams-webhook-url'
  webhookUrl: 'alert-webhook-url'
  webhookSecret: 'alert-webhook-secret'
  pagerDutyRoutingKey: 'alert-pagerduty-routing-key'
}

module teamsWebhookUrlSecret 'secret.bicep' = if (!empty(alertTeamsWebhookUrl)) {
  name: 'secret-teams-webhook-url'
  params: {
    vaultName: vault.name
    name: secretNames.teamsWebhookUrl
    value: alertTeamsWebhookUrl
    contentType: 'text/plain; Teams Workflows webhook URL'
  }
}

module webhookUrlSecret 'secret.bicep' = if (!empty(alertWebhookUrl)) {
  name: 'secret-webhook-url'
  params: {
    vaultName: vault.name
    name: secretNames.webhookUrl
    value: alertWebhookUrl
    contentType: 'text/plain; webhook URL'
  }
}

module webhookSecretSecret 'secret.bicep' = if (!empty(alertWebhookSecret)) {
  name: 'secret-webhook-secret'
  params: {
    vaultName: vault.name
    name: secretNames.webhookSecret
    value: alertWebhookSecret
    contentType: 'text/plain; webhook HMAC signing secret'
  }
}

module pagerDutyRoutingKeySecret 'secret.bicep' = if (!empty(alertPagerDutyRoutingKey)) {
  name: 'secret-pagerduty-routing-key'
  params: {
    vaultName: vault.name
    name: secretNames.pagerDutyRoutingKey
    value: alertPagerDutyRoutingKey
    contentType: 'text/plain; PagerDuty Events API v2 routing key'
  }
}

output id string = vault.id
output name string = vault.name
// Ends with '/': https://<vault>.vault.azure.net/ (or the sovereign-cloud suffix).
output vaultUri string = vault.properties.vaultUri
output teamsWebhookUrlSecretName string = secretNames.teamsWebhookUrl
output webhookUrlSecretName string = secretNames.webhookUrl
output webhookSecretSecretName string = secretNames.webhookSecret
output pagerDutyRoutingKeySecretName string = secretNames.pagerDutyRoutingKey
