"""aitrading: the infrastructure layer of a trading platform.

The import root. `aitrading.core`, `aitrading.services`, `aitrading.operator` and
`aitrading.client` are the top-level folders of the repository (linked here), so that a
package named `operator` never shadows the standard library.
"""

__version__ = "0.1.0"
