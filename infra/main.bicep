// bindwatch: everything except the Entra tenant diagnostic setting (see entra-diagnostic-setting.bicep, which
// needs an Entra Security Administrator and tenant-scope rights). Deploy with `azd up`, or:
//   az deployment sub create --location <region> --template-file infra/main.bicep \
//     --parameters environmentName=<env> location=<region> principalId=<your object id>
// See docs/deploy.md.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Environment name (azd: AZURE_ENV_NAME). Seeds every resource name and the azd-env-name tag.')
param environmentName string

@minLength(1)
@description('Region for all resources (azd: AZURE_LOCATION). Must offer Flex Consumption.')
param location string

@description('Object ID of the deploying user/principal (azd: AZURE_PRINCIPAL_ID): who gets Azure Event Hubs Data Sender on the hub while smokeTestSender is true.')
param principalId string = ''

@description('Grant principalId Azure Event Hubs Data Sender on the hub, for the smoke test only (azd: SMOKE_TEST_SENDER). Off by default: a standing send right lets crafted records into the hub. Turning it off again does not remove the assignment: delete it as docs/deploy.md says.')
param smokeTestSender bool = false

@allowed([
  'User'
  'ServicePrincipal'
  'Group'
])
param principalType string = 'User'

@description('Resource group name; default rg-<environmentName>.')
param resourceGroupName string = ''

// --- Event Hubs ---
param eventHubName string = 'insights-logs-signinlogs'
param consumerGroupName string = 'bindwatch'
@minValue(1)
@maxValue(40)
param eventHubCapacity int = 1
param eventHubAutoInflate bool = true
@minValue(1)
@maxValue(40)
param eventHubMaximumThroughputUnits int = 4
@minValue(1)
@maxValue(32)
param eventHubPartitionCount int = 4
@minValue(1)
@maxValue(7)
param eventHubRetentionDays int = 3

// --- App behaviour (app settings; defaults match shared/settings.py) ---
@description('SETTLE_MINUTES: how long a correlation ID stays open after it was last seen.')
@minValue(1)
@maxValue(1440)
param settleMinutes int = 10
@description('RETENTION_DAYS: how long bindwatch keeps its state rows.')
@minValue(1)
@maxValue(3650)
param retentionDays int = 7
@description('REJECTED_CONTAINER: blob container for input bindwatch could not parse.')
param rejectedContainerName string = 'bindwatch-rejected'
@description('RULES_FILE: alert rules, relative to the deployed package.')
param rulesFile string = 'rules.toml'
@description('ALERT_PAGERDUTY_URL: PagerDuty Events API v2 endpoint.')
param alertPagerDutyUrl string = 'https://events.pagerduty.com/v2/enqueue'

// --- Alert destination secrets: stored in Key Vault, given to the app as Key Vault references. ---
// Empty = destination not configured (no secret, no app setting). On a redeploy, pass them again or the app
// setting is dropped (the secret itself stays in the vault).
@secure()
@description('ALERT_TEAMS_WEBHOOK_URL: Teams Workflows (Power Automate) webhook URL.')
param alertTeamsWebhookUrl string = ''
@secure()
@description('ALERT_WEBHOOK_URL: generic JSON webhook URL.')
param alertWebhookUrl string = ''
@secure()
@description('ALERT_WEBHOOK_SECRET: HMAC signing secret for the generic webhook.')
param alertWebhookSecret string = ''
@secure()
@description('ALERT_PAGERDUTY_ROUTING_KEY: PagerDuty Events API v2 routing (integration) key.')
param alertPagerDutyRoutingKey string = ''

// --- On-call lookup: App Service Authentication with Microsoft Entra ID (docs/lookup.md) ---
@description('Client ID of the Entra app registration for the lookup sign-in (azd: LOOKUP_AUTH_CLIENT_ID). Empty = no sign-in configured and the lookup stays closed.')
param lookupAuthClientId string = ''
@description('App role value on that registration that on-call holds (azd: LOOKUP_ALLOWED_ROLE).')
param lookupAllowedRole string = 'Bindwatch.Lookup'
@description('Object ID of the on-call group, checked by the function as an alternative to the app role (azd: LOOKUP_ALLOWED_GROUP_ID). Empty = the app role alone decides.')
param lookupAllowedGroupId string = ''

// --- Scale and retention ---
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40
@minValue(30)
@maxValue(730)
param logRetentionInDays int = 30
@description('Log reads of the storage account (StorageRead) as well as writes and deletes: most of the storage log volume.')
param storageReadLogs bool = true

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
  app: 'bindwatch'
}
var appName = 'func-bindwatch-${resourceToken}'
// Flex Consumption's package container (name pattern of Microsoft's samples; <= 63 chars).
var deploymentContainerName = 'app-package-${take(appName, 32)}-${take(resourceToken, 7)}'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: empty(resourceGroupName) ? 'rg-${environmentName}' : resourceGroupName
  location: location
  tags: tags
}

module identity 'app/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-bindwatch-${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'app/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: 'log-bindwatch-${resourceToken}'
    applicationInsightsName: 'appi-bindwatch-${resourceToken}'
    location: location
    tags: tags
    retentionInDays: logRetentionInDays
  }
}

module storage 'app/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: 'st${resourceToken}'
    location: location
    tags: tags
    deploymentContainerName: deploymentContainerName
    rejectedContainerName: rejectedContainerName
  }
}

module eventHubs 'app/eventhubs.bicep' = {
  name: 'eventhubs'
  scope: rg
  params: {
    namespaceName: 'evhns-bindwatch-${resourceToken}'
    location: location
    tags: tags
    eventHubName: eventHubName
    consumerGroupName: consumerGroupName
    capacity: eventHubCapacity
    autoInflate: eventHubAutoInflate
    maximumThroughputUnits: eventHubMaximumThroughputUnits
    partitionCount: eventHubPartitionCount
    messageRetentionInDays: eventHubRetentionDays
  }
}

module keyVault 'app/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: 'kv-${resourceToken}'
    location: location
    tags: tags
    alertTeamsWebhookUrl: alertTeamsWebhookUrl
    alertWebhookUrl: alertWebhookUrl
    alertWebhookSecret: alertWebhookSecret
    alertPagerDutyRoutingKey: alertPagerDutyRoutingKey
  }
}

// Key Vault, Event Hubs and storage logs to the workspace (who read a secret, SAS rule changes, state writes).
module diagnostics 'app/diagnostics.bicep' = {
  name: 'diagnostics'
  scope: rg
  params: {
    workspaceId: monitoring.outputs.logAnalyticsId
    keyVaultName: keyVault.outputs.name
    eventHubNamespaceName: eventHubs.outputs.namespaceName
    storageAccountName: storage.outputs.name
    storageReadLogs: storageReadLogs
  }
}

module rbac 'app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    identityPrincipalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    eventHubNamespaceName: eventHubs.outputs.namespaceName
    eventHubName: eventHubs.outputs.eventHubName
    keyVaultName: keyVault.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    principalId: principalId
    principalType: principalType
    smokeTestSender: smokeTestSender
  }
}

module api 'app/api.bicep' = {
  name: 'api'
  scope: rg
  // The identity must hold its roles before the app starts: it reads its package, host storage and
  // Key Vault references with them.
  dependsOn: [
    rbac
  ]
  params: {
    planName: 'plan-bindwatch-${resourceToken}'
    appName: appName
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    storageBlobEndpoint: storage.outputs.blobEndpoint
    deploymentContainerName: storage.outputs.deploymentContainerName
    eventHubFullyQualifiedNamespace: eventHubs.outputs.fullyQualifiedNamespace
    eventHubName: eventHubs.outputs.eventHubName
    consumerGroupName: eventHubs.outputs.consumerGroupName
    applicationInsightsConnectionString: monitoring.outputs.applicationInsightsConnectionString
    keyVaultUri: keyVault.outputs.vaultUri
    hasTeamsWebhookUrl: !empty(alertTeamsWebhookUrl)
    hasWebhookUrl: !empty(alertWebhookUrl)
    hasWebhookSecret: !empty(alertWebhookSecret)
    hasPagerDutyRoutingKey: !empty(alertPagerDutyRoutingKey)
    teamsWebhookUrlSecretName: keyVault.outputs.teamsWebhookUrlSecretName
    webhookUrlSecretName: keyVault.outputs.webhookUrlSecretName
    webhookSecretSecretName: keyVault.outputs.webhookSecretSecretName
    pagerDutyRoutingKeySecretName: keyVault.outputs.pagerDutyRoutingKeySecretName
    settleMinutes: settleMinutes
    retentionDays: retentionDays
    rejectedContainerName: storage.outputs.rejectedContainerName
    rulesFile: rulesFile
    alertPagerDutyUrl: alertPagerDutyUrl
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    lookupAuthClientId: lookupAuthClientId
    lookupAllowedRole: lookupAllowedRole
    lookupAllowedGroupId: lookupAllowedGroupId
  }
}

// azd stores these outputs in the environment (azd env get-values); docs/deploy.md uses them.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = api.outputs.name
output BINDWATCH_PUBLIC_URL string = 'https://${api.outputs.defaultHostName}'
// For the lookup's app registration: its redirect URI, and the identity its federated credential trusts.
output LOOKUP_REDIRECT_URI string = 'https://${api.outputs.defaultHostName}/.auth/login/aad/callback'
output AZURE_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output EVENTHUB_NAMESPACE string = eventHubs.outputs.namespaceName
output EVENTHUB_FULLY_QUALIFIED_NAMESPACE string = eventHubs.outputs.fullyQualifiedNamespace
output SIGNIN_EVENTHUB_NAME string = eventHubs.outputs.eventHubName
// The scope of the smoke test's Data Sender role, to delete the assignment afterwards (a resource ID, not a key).
output SIGNIN_EVENTHUB_ID string = eventHubs.outputs.eventHubId
// Input for infra/entra-diagnostic-setting.bicep (a resource ID, not a key).
output EVENTHUB_AUTHORIZATION_RULE_ID string = eventHubs.outputs.authorizationRuleId
output STORAGE_ACCOUNT_NAME string = storage.outputs.name
output KEY_VAULT_NAME string = keyVault.outputs.name
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.applicationInsightsName
output LOG_ANALYTICS_WORKSPACE_ID string = monitoring.outputs.logAnalyticsId
