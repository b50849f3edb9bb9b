import pytest


@pytest.fixture(autouse=True)
def _fresh_channel_layer():
    """A channel layer per test: channels_redis binds its locks and connections to the event
    loop that first used them, and every async test runs on a loop of its own."""
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()

