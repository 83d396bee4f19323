"""OAuth 2.0 for partners: the token endpoint (Authlib) and access-token checks (joserfc)."""
