"""Real device drivers behind ``hw.interfaces``. Each fails loudly (``DeviceError`` naming the device) when
its device is missing; none falls back to a fake."""
