// The Event Hubs namespace Entra ID streams sign-in logs into, the hub, bindwatch's own consumer group, and the
// shared access rule the tenant diagnostic setting (infra/entra-diagnostic-setting.bicep) writes with.
param namespaceName string
param location string
param tags object
param eventHubName string
param consumerGroupName string

@description('Throughput units. 1 TU = 1 MB/s or 1,000 events/s in, 2 MB/s out. ~17 GB/day is ~0.2 MB/s on average; peaks are several times that.')
@minValue(1)
@maxValue(40)
param capacity int = 1

@description('Let Event Hubs add throughput units under load, up to maximumThroughputUnits.')
param autoInflate bool = true

@minValue(1)
@maxValue(40)
param maximumThroughputUnits int = 4

@description('Partitions bound the Function App\'s parallelism (one instance per partition at most).')
@minValue(1)
@maxValue(32)
param partitionCount int = 4

@description('How long events stay readable (Standard: 1-7 days). Covers a weekend outage of the app.')
@minValue(1)
@maxValue(7)
param messageRetentionInDays int = 3

resource namespace 'Microsoft.EventHub/namespaces@2024-01-01' = {
  name: namespaceName
  location: location
  tags: tags
  sku: {
    name: 'Standard'
    tier: 'Standard'
    capacity: capacity
  }
  properties: {
    minimumTlsVersion: '1.2'
    isAutoInflateEnabled: autoInflate
    maximumThroughputUnits: autoInflate ? maximumThroughputUnits : 0
    // Local (SAS) auth must stay ON: the Entra tenant diagnostic setting (microsoft.aadiam/diagnosticSettings)
    // has no managed-identity option and takes only a namespace authorization rule (eventHubAuthorizationRuleId).
    // With disableLocalAuth: true Entra cannot write. bindwatch itself never uses a key: it reads with its
    // managed identity (Azure Event Hubs Data Receiver on the hub only).
    disableLocalAuth: false
    // Public network access stays enabled: the Function App (Flex Consumption, no VNet integration in this
    // template) reaches the hub over its public endpoint. Entra's diagnostic setting would also pass a firewall
    // as a trusted Microsoft service; the app would not.
    publicNetworkAccess: 'Enabled'
  }
}

resource hub 'Microsoft.EventHub/namespaces/eventhubs@2024-01-01' = {
  parent: namespace
  name: eventHubName
  properties: {
    partitionCount: partitionCount
    messageRetentionInDays: messageRetentionInDays
  }
}

resource consumerGroup 'Microsoft.EventHub/namespaces/eventhubs/consumergroups@2024-01-01' = {
  parent: hub
  name: consumerGroupName
  properties: {
    userMetadata: 'bindwatch Function App (Token Protection verdicts)'
  }
}

// Listen, Send and Manage are what the Entra diagnostic setting demands of the rule it is given (Azure Monitor
// docs); it exists only for that setting. Its keys are never output and never reach an app setting.
resource entraDiagnosticsRule 'Microsoft.EventHub/namespaces/authorizationRules@2024-01-01' = {
  parent: namespace
  name: 'entra-diagnostics'
  properties: {
    rights: [
      'Listen'
      'Send'
      'Manage'
    ]
  }
}

output namespaceId string = namespace.id
output namespaceName string = namespace.name
// serviceBusEndpoint is https://<ns>.servicebus.windows.net:443/ (or a sovereign cloud's suffix): keep the host only.
output fullyQualifiedNamespace string = split(split(namespace.properties.serviceBusEndpoint, '//')[1], ':')[0]
output eventHubId string = hub.id
output eventHubName string = hub.name
output consumerGroupName string = consumerGroup.name
output authorizationRuleId string = entraDiagnosticsRule.id
