"""The sign-up form: a user name that cannot be mistaken for another's, and an email address for
password reset when the site can send mail."""

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserCreationForm

from optsite.usernames import look_alike

LOOK_ALIKE = ("This name looks like the name of an existing user (letters from another alphabet, "
              "wide letters or capitals that read the same): choose one that cannot be mistaken for it.")


class SignupForm(UserCreationForm):
    email = forms.EmailField(required=False, label="Email (optional)",
                             help_text="Only to send you a link if you forget your password.")

    class Meta(UserCreationForm.Meta):
        fields = ("username", "email")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not settings.OPTSITE_PASSWORD_RESET:
            del self.fields["email"]

    def clean_username(self):
        username = super().clean_username()  # NFKC already, and refused if it differs only in case
        if username and "username" not in self.errors:
            names = get_user_model().objects.values_list("username", flat=True)
            if look_alike(username, names) is not None:
                raise forms.ValidationError(LOOK_ALIKE, code="look_alike")
        return username
