"""The Pulumi program: read the stack config once, validate it, and build the stack."""

import pulumi

from components.config import load_settings, read_config
from components.stack import build_stack

settings = load_settings(
    read_config(pulumi.Config()), region=pulumi.Config("aws").get("region"), stack=pulumi.get_stack()
)
for name, value in build_stack(settings).items():
    pulumi.export(name, value)
