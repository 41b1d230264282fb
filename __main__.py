"""The Pulumi program: reads the stack config once and wires the components together.

The components are built in issue 6 (see README, "Deploy"); until then this program declares
no resources.
"""
