"""The Stripe fake: ``sandbox.stripe.app.Stripe`` (see its docstring for the endpoints, and
``sandbox.stripe.cards`` for the test cards and PaymentMethod test IDs)."""
