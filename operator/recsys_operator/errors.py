"""Domain errors; only the handlers map them onto kopf's retry semantics."""


class RecsysOperatorError(Exception):
    """Base class for the operator's own errors."""


class ConfigurationError(RecsysOperatorError):
    """The operator's environment is wrong: fix the Deployment and restart."""


class InvalidSpecError(RecsysOperatorError):
    """The RecSystem spec cannot be reconciled: fix the CR; retrying will not help."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class KubeApiError(RecsysOperatorError):
    """The API server refused a request in a way the caller did not opt to tolerate."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        self.status = status
        self.reason = reason
        self.message = message
        super().__init__(f"{status} {reason}: {message}")

    @property
    def namespace_terminating(self) -> bool:
        """The namespace is being deleted: nothing may be (re)created in it, and nothing
        should be: its RecSystems go too."""
        return self.status == 403 and "because it is being terminated" in self.message
