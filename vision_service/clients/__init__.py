"""Programs that talk to a running service over HTTP, as any client would; never imported by the service."""
