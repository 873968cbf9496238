"""The kernel the connectors stand on: the error taxonomy, outbound HTTP with call
recording, throttling, redaction, exact JSON and the run context. It imports nothing
from the engine or the connectors above it; the engine plugs in where calls are
stored (:func:`integrations.kernel.http.set_call_recorder`)."""
