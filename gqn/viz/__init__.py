"""Figures: contact sheets of dataset scenes (:mod:`gqn.viz.contact_sheet`)."""
