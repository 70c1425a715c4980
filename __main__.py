"""Composition root: validate the stack config, build every region, export what users need."""

import pulumi

import config
from components.region import deploy

try:
    settings = config.from_pulumi()
except config.ConfigError as err:
    raise pulumi.RunError(str(err)) from None

for region_name, region_outputs in deploy(settings).items():
    pulumi.export(region_name, region_outputs)
