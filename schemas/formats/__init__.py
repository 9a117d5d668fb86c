"""Wire formats a trace can arrive in, one module each, all mapped to the plain contract.

``plain`` (the contract itself), ``span`` (one span in any of its JSON shapes, normalised),
``otel_genai`` and ``openinference`` (attribute conventions of a span), ``otlp_json`` and
``otlp_proto`` (an OTLP ``ExportTraceServiceRequest`` holding many spans).
"""
