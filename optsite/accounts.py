"""The sign-up form: a user name that is not a look-alike of another, and an email address for
password reset when the site can send mail."""

from django import forms
from django.conf import settings
from django.contrib.auth.forms import UserCreationForm


class SignupForm(UserCreationForm):
    email = forms.EmailField(required=False, label="Email (optional)",
                             help_text="Only to send you a link if you forget your password.")

    class Meta(UserCreationForm.Meta):
        fields = ("username", "email")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not settings.OPTSITE_PASSWORD_RESET:
            del self.fields["email"]
