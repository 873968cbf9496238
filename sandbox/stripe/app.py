"""Placeholder; replaced by the Stripe fake."""

from sandbox.system import System


class Stripe(System):
    name = "stripe"

    def register_routes(self) -> None:
        pass
