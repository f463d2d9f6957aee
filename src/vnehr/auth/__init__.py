"""Authentication: SMART on FHIR / OAuth 2.0 authorization server and token checks.

See docs/auth.md. Modules: scopes (SMART scope grammar), keys (the server's signing keys),
tokens (access tokens), clients (registered OAuth clients), assertions (client
authentication), accounts and activation (practitioner, citizen and operator accounts,
security codes), vneid (the VNeID OpenID Connect federation), access (scope checks on every
FHIR interaction), service (the token, introspection and revocation endpoints' logic),
endpoints (HTTP), pages (the login, consent and activation pages), commands (CLI).
"""
