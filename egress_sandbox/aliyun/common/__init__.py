"""What the three emulated products share: signatures, errors, parameters, paging, dispatch."""
