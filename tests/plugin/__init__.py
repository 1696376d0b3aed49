"""A user's tests of their own code with the kore-models[testing] plugin."""
