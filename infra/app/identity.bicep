// The one user-assigned identity bindwatch runs as. User-assigned (not system-assigned) so that it exists,
// and its role assignments can be granted, before the Function App is created: Flex Consumption reads its
// deployment package and the host storage with this identity from the first start.
param name string
param location string
param tags object

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
