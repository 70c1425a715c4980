"""The Pulumi program: validate the stack config, deploy it (the composition root, components/root.py), export what
users need."""

import pulumi

import config
from components.root import deploy

try:
    settings = config.from_pulumi()
except config.ConfigError as err:
    raise pulumi.RunError(str(err)) from None

for region_name, region_outputs in deploy(settings).items():
    pulumi.export(region_name, region_outputs)
