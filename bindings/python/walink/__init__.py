"""walink for Python: the stores (walink.store) and the asyncio driver (walink.driver) over the
uniffi-generated walink_ffi module."""
