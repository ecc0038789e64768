/** SMART Backend Services: registered clients, the token endpoint, and the tokens it mints. */
export { ACCESS_TOKEN_TYPE } from './access-token';
export { MAX_ASSERTION_LIFETIME_SECONDS } from './client-assertion';
export {
  ASSERTION_ALGORITHMS,
  clientRegistryFromJson,
  ClientRegistryError,
  loadClientRegistry,
  type ClientRegistry,
  type RegisteredClient,
} from './client-registry';
export { ownTokenVerifier, type OwnTokenVerifierOptions } from './own-token-verifier';
export { createReplayStore, JTI_COLLECTION, type ReplayStore, type ReplayStoreOptions } from './replay-store';
export { loadOrCreateSigningKey, publicJwks, type SigningKey } from './signing-key';
export { CONTEXT_SCOPES, grantScopes } from './smart-scopes';
export {
  backendServicesDiscovery,
  backendServicesRouter,
  JWT_BEARER_ASSERTION,
  type BackendServicesOptions,
} from './token-router';
