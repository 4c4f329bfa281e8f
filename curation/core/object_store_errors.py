"""One line for an object store that cannot be reached or has no credentials for this job."""

from __future__ import annotations

# botocore's exceptions (s3fs) by class name, so that the CLI recognizes them without importing
# botocore; what the user should check for each. Their messages name no secret.
_HINTS = {
    "NoCredentialsError": "give credentials in the environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "
    "AWS_PROFILE), in ~/.aws, or by the machine's role",
    "PartialCredentialsError": "set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
    "CredentialRetrievalError": "check the credential provider the AWS profile names",
    "EndpointConnectionError": "check AWS_ENDPOINT_URL (or the input's storage_options.client_kwargs.endpoint_url) "
    "and that the store is reachable from here",
    "ConnectTimeoutError": "check AWS_ENDPOINT_URL and that the store is reachable from here",
}


def object_store_error(error: BaseException) -> str | None:
    """The line to print for an object store's access failure anywhere in `error`'s chain, else None."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        name = type(current).__name__
        if type(current).__module__.startswith("botocore") and name in _HINTS:
            return f"the object store cannot be used: {current}; {_HINTS[name]}"
        current = current.__cause__ or current.__context__
    return None
