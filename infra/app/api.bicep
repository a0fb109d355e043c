// The bindwatch Function App on Flex Consumption (FC1): Python 3.11, runs as the user-assigned identity, and
// reaches storage, Event Hubs, Key Vault and Application Insights with that identity only (no keys anywhere).
param planName string
param appName string
param location string
param tags object

param identityId string
param identityClientId string

param storageAccountName string
param storageBlobEndpoint string
param deploymentContainerName string

param eventHubFullyQualifiedNamespace string
param eventHubName string
param consumerGroupName string

param applicationInsightsConnectionString string

@description('https://<vault>.vault.azure.net/ (with the trailing slash), for the Key Vault references.')
param keyVaultUri string
param hasTeamsWebhookUrl bool = false
param hasWebhookUrl bool = false
param hasWebhookSecret bool = false
param hasPagerDutyRoutingKey bool = false
param teamsWebhookUrlSecretName string
param webhookUrlSecretName string
param webhookSecretSecretName string
param pagerDutyRoutingKeySecretName string

param settleMinutes int = 10
param retentionDays int = 7
param rejectedContainerName string = 'bindwatch-rejected'
param rulesFile string = 'rules.toml'
param alertPagerDutyUrl string = 'https://events.pagerduty.com/v2/enqueue'

// --- Who may open the on-call lookup (App Service Authentication with Microsoft Entra ID; docs/lookup.md) ---
@description('Client ID of the Entra app registration that signs on-call in. Empty = no App Service Authentication, and the lookup stays closed (the function refuses it).')
param lookupAuthClientId string = ''
@description('App role value the function requires (LOOKUP_ALLOWED_ROLE); assign the on-call group to it.')
param lookupAllowedRole string = 'Bindwatch.Lookup'
@description('Object ID of the on-call group, checked by the function from the groups claim as an alternative to the app role (LOOKUP_ALLOWED_GROUP). Empty = the app role alone decides.')
param lookupAllowedGroupId string = ''

@description('Flex Consumption instance memory: 512, 2048 or 4096 MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Upper bound on instances. Event Hubs target-based scaling uses at most one instance per partition.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: Flex Consumption zone redundancy exists only in some regions and is left off so the template deploys anywhere Flex does; during a zone outage events wait in the Event Hub (3-day retention) and processing resumes from the checkpoints.
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222: Inbound public access stays on: azd / `az functionapp deploy` publish through the app's scm endpoint, and people open BINDWATCH_PUBLIC_URL links from alerts. Closing it needs a private endpoint and a private deployment path (not in this template). The triggers are Event Hubs and timer, which need no inbound access.
  // checkov:skip=CKV_AZURE_17: Required client certificates would lock out the people following BINDWATCH_PUBLIC_URL links and the portal's function views; no HTTP caller of bindwatch presents a certificate.
  // checkov:skip=CKV_AZURE_212: numberOfWorkers is an App Service plan setting; Flex Consumption scales per app from zero (Event Hubs target-based scaling), and the hub buffers events while an instance starts.
  // checkov:skip=CKV_AZURE_213: A health-check path is an App Service load-balancer feature for HTTP apps; bindwatch's work is Event Hubs and timer triggers, whose instances the Flex scale controller manages.
  name: appName
  location: location
  // azd deploys the code of service 'api' (azure.yaml) to the resource carrying this tag.
  tags: union(tags, {
    'azd-service-name': 'api'
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // Key Vault references resolve with the user-assigned identity (default would be a system identity).
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      remoteDebuggingEnabled: false
      // No browser origin may call the app.
      cors: {
        allowedOrigins: []
      }
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// No FTP and no basic-auth (publishing profile) deployments: azd and `az functionapp deployment` use Entra ID.
resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'scm'
  properties: {
    allow: false
  }
}

// ---------------------------------------------------------------------------------------------------------------
// App settings. Names are the aliases in shared/settings.py (tests/infra/test_infra.py holds the two sides together).
// On Flex Consumption there is no FUNCTIONS_WORKER_RUNTIME / FUNCTIONS_EXTENSION_VERSION: functionAppConfig
// carries the runtime.
// ---------------------------------------------------------------------------------------------------------------
var hostSettings = {
  // Host storage with the identity. accountName = public-cloud default DNS for blob, queue and table.
  AzureWebJobsStorage__accountName: storageAccountName
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  // Event Hubs trigger connection (connection="EventHubConnection" in function_app.py).
  EventHubConnection__fullyQualifiedNamespace: eventHubFullyQualifiedNamespace
  EventHubConnection__credential: 'managedidentity'
  EventHubConnection__clientId: identityClientId
  // Entra-authenticated telemetry (the component has local auth disabled).
  APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
}

var bindwatchSettings = {
  SIGNIN_EVENTHUB_NAME: eventHubName
  SIGNIN_EVENTHUB_CONSUMER_GROUP: consumerGroupName
  SETTLE_MINUTES: string(settleMinutes)
  RETENTION_DAYS: string(retentionDays)
  // The sign-in table's hash-bucket partitions; fixed for the life of a table (docs/capacity.md sizes it).
  STATE_SIGNIN_BUCKETS: '8'
  REJECTED_CONTAINER: rejectedContainerName
  RULES_FILE: rulesFile
  ALERT_PAGERDUTY_URL: alertPagerDutyUrl
  BINDWATCH_PUBLIC_URL: 'https://${functionApp.properties.defaultHostName}'
}

// The lookup's access (read by shared/views/access.py) and App Service Authentication's secret-free client
// credential: the user-assigned identity as a federated credential of the app registration (no client secret).
var lookupEnabled = !empty(lookupAuthClientId)
var lookupSettings = lookupEnabled ? union({
  // The function trusts X-MS-CLIENT-PRINCIPAL only behind App Service Authentication: the platform says so with
  // WEBSITE_AUTH_ENABLED where it injects it (and then decides), this setting says so where it does not.
  LOOKUP_AUTH_ENABLED: 'true'
  LOOKUP_ALLOWED_ROLE: lookupAllowedRole
  OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID: identityClientId
  WEBSITE_AUTH_AAD_ALLOWED_TENANTS: tenant().tenantId
}, empty(lookupAllowedGroupId) ? {} : {
  LOOKUP_ALLOWED_GROUP: lookupAllowedGroupId
}) : {}

// Secret destinations: Key Vault references (no version: the platform picks up a new version within 24 h),
// present only when a value was deployed to the vault.
var teamsSetting = hasTeamsWebhookUrl ? {
  ALERT_TEAMS_WEBHOOK_URL: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/${teamsWebhookUrlSecretName}/)'
} : {}
var webhookUrlSetting = hasWebhookUrl ? {
  ALERT_WEBHOOK_URL: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/${webhookUrlSecretName}/)'
} : {}
var webhookSecretSetting = hasWebhookSecret ? {
  ALERT_WEBHOOK_SECRET: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/${webhookSecretSecretName}/)'
} : {}
var pagerDutySetting = hasPagerDutyRoutingKey ? {
  ALERT_PAGERDUTY_ROUTING_KEY: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/${pagerDutyRoutingKeySecretName}/)'
} : {}

// A separate appsettings resource (Microsoft's pattern for Key Vault references): it can use the site's own
// defaultHostName, and main.bicep orders it after the role assignments.
resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  // The checks below read properties of the 'web' config resource (site configuration); Checkov applies them
  // to every Microsoft.Web/sites/config, including this 'appsettings' name/value dictionary, where they cannot apply.
  // checkov:skip=CKV_AZURE_13: Applies to config 'authsettings'/'web', not 'appsettings'. App Service Authentication is the authSettings resource below (authsettingsV2), switched on with lookupAuthClientId.
  // checkov:skip=CKV_AZURE_63: Applies to config 'web' (IIS-style HTTP logs), not 'appsettings'. Telemetry goes to Application Insights.
  // checkov:skip=CKV_AZURE_65: Applies to config 'web', not 'appsettings'. Detailed error pages are an IIS feature; errors go to Application Insights.
  // checkov:skip=CKV_AZURE_66: Applies to config 'web', not 'appsettings'. Failed request tracing is an IIS feature; requests are traced in Application Insights.
  // checkov:skip=CKV_AZURE_80: Applies to config 'web' of .NET apps; this is a Python app and 'appsettings' has no netFrameworkVersion.
  // checkov:skip=CKV_AZURE_88: Azure Files mounts are not used: Flex Consumption runs the package from blob storage (functionAppConfig.deployment).
  // checkov:skip=CKV_AZURE_222: Applies to the site (publicNetworkAccess), not 'appsettings'; see the reason on functionApp.
  parent: functionApp
  name: 'appsettings'
  properties: union(hostSettings, bindwatchSettings, teamsSetting, webhookUrlSetting, webhookSecretSetting, pagerDutySetting, lookupSettings)
}

// ---------------------------------------------------------------------------------------------------------------
// App Service Authentication (Easy Auth) with Microsoft Entra ID in front of the on-call lookup. Everyone must sign
// in, except on /api/health, which probes call with the function key (the Functions host checks keys after this
// layer; the lookup's route is anonymous to the host because a click from Teams cannot send a key). Only members
// assigned to the app registration's role can sign in (Entra enforces assignment), and the function requires the
// app role (or the group) again from X-MS-CLIENT-PRINCIPAL. Declared after the app settings so the
// federated-credential setting it names exists when it is switched on.
// ---------------------------------------------------------------------------------------------------------------
resource authSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  // Checkov applies the 'web' config checks to every Microsoft.Web/sites/config; these do not apply to authsettingsV2.
  // checkov:skip=CKV_AZURE_13: A V1 check: it reads the classic 'authsettings' (properties.enabled), absent from authsettingsV2, which is switched on by properties.platform.enabled whenever lookupAuthClientId is given; the V2 check, CKV_AZURE_56, runs and passes. tests/infra/test_infra.py checks it too.
  // checkov:skip=CKV_AZURE_63: Applies to config 'web' (IIS-style HTTP logs), not 'authsettingsV2'. Telemetry goes to Application Insights.
  // checkov:skip=CKV_AZURE_65: Applies to config 'web', not 'authsettingsV2'. Errors go to Application Insights.
  // checkov:skip=CKV_AZURE_66: Applies to config 'web', not 'authsettingsV2'. Requests are traced in Application Insights.
  // checkov:skip=CKV_AZURE_80: Applies to config 'web' of .NET apps; this is a Python app and 'authsettingsV2' has no netFrameworkVersion.
  // checkov:skip=CKV_AZURE_88: Azure Files mounts are not used: Flex Consumption runs the package from blob storage (functionAppConfig.deployment).
  // checkov:skip=CKV_AZURE_222: Applies to the site (publicNetworkAccess), not 'authsettingsV2'; see the reason on functionApp.
  parent: functionApp
  name: 'authsettingsV2'
  dependsOn: [
    appSettings
  ]
  properties: {
    platform: {
      // Off without an app registration: the function then refuses the lookup (fail closed), health keeps its key.
      enabled: lookupEnabled
    }
    globalValidation: {
      requireAuthentication: true
      unauthenticatedClientAction: 'RedirectToLoginPage'
      redirectToProvider: 'azureactivedirectory'
      excludedPaths: [
        '/api/health'
      ]
    }
    httpSettings: {
      requireHttps: true
      forwardProxy: {
        convention: 'NoProxy'
      }
    }
    identityProviders: lookupEnabled ? {
      azureActiveDirectory: {
        enabled: true
        registration: {
          openIdIssuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
          clientId: lookupAuthClientId
          // Not a secret: the name of the app setting that holds the user-assigned identity's client ID.
          clientSecretSettingName: 'OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID'
        }
        // Who may sign in is decided by Entra itself: the app registration requires assignment, and the on-call
        // group is assigned to its app role (docs/lookup.md). allowedPrincipals.groups is deliberately not used: it
        // is in the schema but not in Microsoft's how-to, and reported not to work.
        validation: {
          allowedAudiences: [
            'api://${lookupAuthClientId}'
          ]
        }
      }
    } : {}
    login: {
      // Microsoft's recommended setting (and its Flex Consumption tutorial's); the claims the function checks come
      // with it.
      tokenStore: {
        enabled: true
      }
      cookieExpiration: {
        convention: 'FixedTime'
        timeToExpiration: '08:00:00'
      }
    }
  }
}
