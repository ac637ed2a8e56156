"""harness.deploy: the checkpointing StatefulSet, defined once and deployed three ways.

spec (typed settings, one parser for flags and Pulumi config) -> manifests (the objects) ->
direct (kubernetes client via harness.kube) | pulumi (Automation API) | render (YAML files);
pulumi_program is what infra/__main__.py runs; image builds the writer image.
"""
