"""Treatment proposals, specialists' opinions and the chair's signed consensus."""
