// Tenant-level Entra ID diagnostic setting: stream interactive and non-interactive user sign-in logs to the
// bindwatch Event Hub. Deployed ONCE, separately from main.bicep, by a person who is an Entra
// Security Administrator (or Global Administrator) AND holds Microsoft.Resources/deployments/* at tenant root
// scope ('/'), plus listKeys on the authorization rule (Owner/Contributor on the namespace):
//   az deployment tenant create --location <region> --template-file infra/entra-diagnostic-setting.bicep \
//     --parameters infra/entra-diagnostic-setting.parameters.json \
//     --parameters eventHubAuthorizationRuleId=<EVENTHUB_AUTHORIZATION_RULE_ID output of main.bicep>
// See docs/deploy.md.
targetScope = 'tenant'

@description('Resource ID of the namespace authorization rule (Listen, Send, Manage): main.bicep output EVENTHUB_AUTHORIZATION_RULE_ID.')
param eventHubAuthorizationRuleId string

@description('The hub to stream into (main.bicep output SIGNIN_EVENTHUB_NAME). If empty, Azure would create one hub per category.')
param eventHubName string = 'insights-logs-signinlogs'

@description('Name of the diagnostic setting as shown in Entra ID > Monitoring > Diagnostic settings.')
param settingName string = 'bindwatch-signin-logs'

// The 2017-04-01 type lists only AuditLogs and SignInLogs; Entra accepts NonInteractiveUserSignInLogs too
// (the Bicep CLI may warn about the value; it deploys). AuditLogs (~2 KB an event, far fewer than sign-ins) carry
// the Conditional Access policy changes bindwatch reads to explain a spike; until it reads them they are counted
// as skipped. Service-principal and managed-identity sign-ins are off: bindwatch does not use them and they can
// be 5-10x the volume.
resource signInLogsToEventHub 'microsoft.aadiam/diagnosticSettings@2017-04-01' = {
  name: settingName
  properties: {
    eventHubAuthorizationRuleId: eventHubAuthorizationRuleId
    eventHubName: eventHubName
    logs: [
      {
        category: 'SignInLogs'
        enabled: true
      }
      {
        category: 'NonInteractiveUserSignInLogs'
        enabled: true
      }
      {
        category: 'AuditLogs'
        enabled: true
      }
    ]
  }
}

output settingName string = signInLogsToEventHub.name
