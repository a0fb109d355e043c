// One storage account for everything bindwatch keeps:
//   - the Functions host (AzureWebJobsStorage: Event Hubs checkpoints and timer locks, blobs);
//   - the Flex Consumption deployment package (blob container deploymentContainerName);
//   - bindwatch's state tables (created by the app at run time, prefix STATE_TABLE_PREFIX);
//   - rejected input, dead-lettered to the blob container rejectedContainerName.
// Every client authenticates with Entra ID (the app's user-assigned identity), so shared key access is off:
// Flex Consumption supports identity-only storage for the host and the deployment container, and has no
// Azure Files content share (WEBSITE_CONTENTAZUREFILECONNECTIONSTRING) that would need a key.
param name string
param location string
param tags object
param deploymentContainerName string
param rejectedContainerName string

@description('Replication. ZRS keeps checkpoints and settle state through a zone outage; use Standard_LRS where the region has no ZRS.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
param skuName string = 'Standard_ZRS'

@description('Days a deleted blob (rejected input, package) stays recoverable.')
param blobDeleteRetentionDays int = 7

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: Flex Consumption without VNet integration reaches storage over its public endpoint, and Functions is not a trusted Microsoft service for storage, so default action Deny would stop the host. Access is Entra-only (shared keys off); use VNet integration + private endpoints to close the network path.
  // checkov:skip=CKV_AZURE_206: Replication is the parameter skuName, default Standard_ZRS; Checkov does not resolve parameter defaults. Standard_LRS is allowed only for regions without ZRS.
  // checkov:skip=CKV_AZURE_59: Same reason as CKV_AZURE_35: the app has no private network path in this template. Anonymous blob access is off and shared keys are off, so public network access only admits Entra-authorized callers.
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: blobDeleteRetentionDays
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: blobDeleteRetentionDays
    }
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource rejectedContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: rejectedContainerName
  properties: {
    publicAccess: 'None'
  }
}

output id string = storage.id
output name string = storage.name
output blobEndpoint string = storage.properties.primaryEndpoints.blob
output tableEndpoint string = storage.properties.primaryEndpoints.table
output deploymentContainerName string = deploymentContainer.name
output rejectedContainerName string = rejectedContainer.name
