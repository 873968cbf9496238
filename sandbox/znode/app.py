"""Placeholder; replaced by the Znode 9.x fake."""

from sandbox.system import System


class Znode(System):
    name = "znode"

    def register_routes(self) -> None:
        pass
