"""The MQTT service (`sound-sentry serve`): sources from a YAML file, events to Home Assistant over MQTT.

Needs the `service` extra (paho-mqtt, PyYAML); nothing else in the engine imports this package.
"""
