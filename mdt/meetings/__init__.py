"""Meeting series, meetings, agendas and attendance."""
