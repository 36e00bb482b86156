"""What a report shows and how: figures from the warehouse, charts, documents, spreadsheets."""
