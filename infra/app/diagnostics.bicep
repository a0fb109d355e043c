// Diagnostic settings: who read the vault's secrets, what happened to the Event Hubs namespace (its SAS rule
// included), and every write and delete (and, by default, read) of the storage account that holds bindwatch's
// state, package and dead letters, all sent to the Log Analytics workspace in resource-specific tables
// (AZKVAuditLogs, AZMSOperationalLogs, StorageBlobLogs, StorageTableLogs, ...). Categories are Microsoft's
// (Azure Monitor "supported logs" pages for Microsoft.KeyVault/vaults, Microsoft.EventHub/namespaces and the
// storage blob and table services); what they cost is in docs/deploy.md.
param workspaceId string
param keyVaultName string
param eventHubNamespaceName string
param storageAccountName string

@description('Log reads of the storage account too (StorageRead on the blob and table services). The state tables are read on every batch and the host reads its checkpoints: reads are most of the storage log volume.')
param storageReadLogs bool = true

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource namespace 'Microsoft.EventHub/namespaces@2024-01-01' existing = {
  name: eventHubNamespaceName
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

// Logs of a storage account are set on its services, not on the account (which carries metrics only).
resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: storage
  name: 'default'
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' existing = {
  parent: storage
  name: 'default'
}

var storageLogs = [
  {
    category: 'StorageRead'
    enabled: storageReadLogs
  }
  {
    category: 'StorageWrite'
    enabled: true
  }
  {
    category: 'StorageDelete'
    enabled: true
  }
]

// Transactions by API and response type: throttling (503), conflicts and cost, per service.
var transactionMetrics = [
  {
    category: 'Transaction'
    enabled: true
  }
]

resource vaultDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: vault
  properties: {
    workspaceId: workspaceId
    logAnalyticsDestinationType: 'Dedicated'
    logs: [
      {
        category: 'AuditEvent'
        enabled: true
      }
    ]
  }
}

// OperationalLogs: management operations (the SAS rule the Entra setting writes with, hubs, consumer groups);
// DiagnosticErrorLogs: client, server-busy and quota errors; AutoScaleLogs: auto-inflate. RuntimeAuditLogs exists
// on Premium only. Metrics: throttled requests and incoming bytes against the throughput units.
resource namespaceDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: namespace
  properties: {
    workspaceId: workspaceId
    logAnalyticsDestinationType: 'Dedicated'
    logs: [
      {
        category: 'OperationalLogs'
        enabled: true
      }
      {
        category: 'DiagnosticErrorLogs'
        enabled: true
      }
      {
        category: 'AutoScaleLogs'
        enabled: true
      }
    ]
    metrics: [
      {
        category: 'AllMetrics'
        enabled: true
      }
    ]
  }
}

resource blobDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: blobService
  properties: {
    workspaceId: workspaceId
    logs: storageLogs
    metrics: transactionMetrics
  }
}

resource tableDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: tableService
  properties: {
    workspaceId: workspaceId
    logs: storageLogs
    metrics: transactionMetrics
  }
}
